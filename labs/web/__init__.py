"""obslab.labs.web"""

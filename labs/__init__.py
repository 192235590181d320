"""obslab.labs"""

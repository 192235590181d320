"""obslab.labs.injectors"""

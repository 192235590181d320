"""obslab.dashboards"""

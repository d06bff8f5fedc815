"""Measurement: outcomes of every assignment in the playbook's window and the increment over the holdout.

``outcomes`` reads the warehouse (success events and stock+fund commission per assignment, in trading
days); ``estimate`` holds the pure estimators (IPW, CUPED, CIs); ``report`` assembles the measured
report that ``panhuo report`` prints.
"""

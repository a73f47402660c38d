"""Remediation actions as UI-free command objects (plan -> confirm -> execute -> verify).

Never imports textual. The action kinds arrive with the actions issue.
"""

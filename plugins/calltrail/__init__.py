"""calltrail: call-tracking touchpoints from Salesforce Tasks and web sessions."""

__version__ = "0.1.0"

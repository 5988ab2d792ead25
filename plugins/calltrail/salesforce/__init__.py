"""Salesforce Tasks: extraction over the REST and Bulk 2.0 APIs, and Task files from the landing folder."""

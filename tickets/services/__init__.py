"""The write side of the domain: every change to tickets, knowledge, webhooks and tokens goes through here."""

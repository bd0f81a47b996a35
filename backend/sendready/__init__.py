"""SendReady: will the mail you are writing be delivered, and authenticated?"""

__version__ = "0.1.0"

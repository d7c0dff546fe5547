"""BankChurn: will a bank customer leave? A servekit model service."""

"""Local development stack for dropcut: provider simulator and media helpers."""

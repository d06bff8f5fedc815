"""Reports a person reads: the self-contained HTML overview (offline, zh-CN)."""

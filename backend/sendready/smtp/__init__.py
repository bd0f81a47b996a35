"""SMTP readiness: guarded probes, reply-code explanations, and the target guard."""

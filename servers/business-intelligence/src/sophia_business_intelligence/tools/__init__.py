"""The BI server's tools: argument models, result models, text rendering. One file per family."""

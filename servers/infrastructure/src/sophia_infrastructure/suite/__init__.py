"""The suite's own Pulumi project (`sophia-ai`): what it deploys and the inline program that does it."""

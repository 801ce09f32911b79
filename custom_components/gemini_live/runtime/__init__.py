"""The Home Assistant side of a running agent: conversations, turns, tools, voice runs."""

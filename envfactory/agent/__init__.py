"""The agent side: tool-call formats and parsing (the agent loop arrives with the data stage)."""

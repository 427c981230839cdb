"""The monthly report: figures and tables computed from a run folder's files, and its HTML."""

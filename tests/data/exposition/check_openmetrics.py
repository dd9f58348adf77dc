"""Parses OpenMetrics text from stdin with the reference parser shipped in
prometheus_client. Exit 0: valid; 1: rejected; 77: parser not installed."""
import sys

try:
    from prometheus_client.openmetrics.parser import text_string_to_metric_families
except ImportError:
    sys.exit(77)

try:
    families = list(text_string_to_metric_families(sys.stdin.read()))
except Exception as e:  # the parser raises ValueError and others
    print("rejected:", repr(e))
    sys.exit(1)
print(len(families), "families")

"""Load testing a fleet with the SDK: `speech-client loadtest`, or from Python:

plans = load_plans([], "noise", AudioFormat(), frame_ms=100, duration_s=10)
run = await run_load_test(LoadTestOptions("ws://127.0.0.1:8080", sessions=50), plans)
print(format_table(build_report(run)))
"""

from speech_client.loadtest.report import build_report, format_table
from speech_client.loadtest.runner import LoadRun, LoadTestOptions, run_load_test
from speech_client.loadtest.sources import FramePlan, load_plans

__all__ = [
    "FramePlan",
    "LoadRun",
    "LoadTestOptions",
    "build_report",
    "format_table",
    "load_plans",
    "run_load_test",
]

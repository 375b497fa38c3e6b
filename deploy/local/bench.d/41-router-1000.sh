#!/usr/bin/env bash
# 41-router-1000.sh: 40-router.sh at 1,000 inbound messages/s, the tier whose target is
# p99 <= 50 ms end to end (10,000 messages, untraced: tracing every message costs CPU at this
# rate). RT_BENCH_SECONDS and RT_BENCH_TRACE_SAMPLE still apply; RT_BENCH_RATE is this file's.
set -euo pipefail
RT_BENCH_RATE=1000 RT_BENCH_SECONDS=${RT_BENCH_SECONDS:-10} \
    RT_BENCH_TRACE_SAMPLE=${RT_BENCH_TRACE_SAMPLE:-0} \
    exec bash "$(dirname "${BASH_SOURCE[0]}")/40-router.sh"

# Runtime options of the sanitizer builds, sourced before running their tests:
#   QV2X_SANITIZER=address,undefined . sanitizers/options.sh   (build-asan: suite, fuzzers)
#   QV2X_SANITIZER=thread . sanitizers/options.sh              (build-tsan)
# (a variable, not an argument: POSIX sh passes none to a sourced file).
# Every suppression lives in a file next to this one, each line saying why. None may name
# qv2x code: a report in qv2x code is fixed, not suppressed.
# POSIX sh (make's shell) has no BASH_SOURCE: it sources this from the repository root.
_qv2x_san_dir=$(cd "$(dirname "${BASH_SOURCE:-sanitizers/options.sh}")" && pwd)
case "${QV2X_SANITIZER:-}" in
  address,undefined)
    # abort_on_error=1: a report ends the process with SIGABRT, so that a parent test sees
    #   a crashed server, not a clean exit.
    # max_allocation_size_mb=1024: no single allocation of these presets comes near 1 GiB;
    #   one that does is a reader trusting a size from its input (fuzz/replay_main.cc
    #   enforces the same limit in the ordinary build).
    export ASAN_OPTIONS="abort_on_error=1:max_allocation_size_mb=1024"
    export LSAN_OPTIONS="suppressions=$_qv2x_san_dir/lsan.supp:print_suppressions=0"
    export UBSAN_OPTIONS="print_stacktrace=1:abort_on_error=1"
    ;;
  thread)
    # second_deadlock_stack=1: both stacks of a lock-order inversion.
    # ignore_noninstrumented_modules=1: gRPC, Abseil, protobuf and LibTorch are not built
    #   with TSan, so the synchronisation inside them (futexes, atomics, absl::Mutex) is
    #   invisible and the memcpy / free / epoll_wait calls they make look like races (seen:
    #   gRPC's poller fd, absl::Status and Cord payloads). Only the interceptor calls made
    #   from those libraries are dropped; every access in qv2x code is still checked.
    export TSAN_OPTIONS="suppressions=$_qv2x_san_dir/tsan.supp:ignore_noninstrumented_modules=1:second_deadlock_stack=1:halt_on_error=1:abort_on_error=1:print_suppressions=0"
    ;;
  *)
    echo "options.sh: set QV2X_SANITIZER to address,undefined or thread" >&2
    return 2 2>/dev/null || exit 2
    ;;
esac
# Exported, so that a test can tell it runs under a sanitizer.
export QV2X_SANITIZER
unset _qv2x_san_dir

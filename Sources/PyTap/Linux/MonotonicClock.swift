import CLinux
import Glibc

/// CLOCK_MONOTONIC in nanoseconds, and sleeping until an absolute deadline on it
/// (clock_nanosleep with TIMER_ABSTIME: no drift from the time spent sampling).
public enum MonotonicClock {
    public static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    /// Sleeps until `deadline`; returns false when a signal interrupted the sleep.
    @discardableResult
    public static func sleep(until deadline: UInt64) -> Bool {
        var ts = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
        let result = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nil)
        return result != EINTR
    }

    /// Asks the kernel to wake this thread within `nanoseconds` of a deadline (default
    /// slack is 50 µs, a twentieth of a 1 ms sampling interval).
    public static func setTimerSlack(nanoseconds: UInt) {
        _ = clinux_set_timer_slack(nanoseconds)
    }

    /// Wall-clock time, seconds since the Unix epoch.
    public static func wallClock() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}

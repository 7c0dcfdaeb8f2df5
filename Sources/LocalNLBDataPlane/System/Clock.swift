import Glibc
import LocalNLBModel

/// The wall-clock time as RFC 3339 in UTC with milliseconds (`2026-11-24T19:22:36.123Z`), for the
/// event log and the flow log.
public func rfc3339Now() -> String {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return rfc3339(seconds: now.tv_sec, milliseconds: Int32(now.tv_nsec / 1_000_000))
}

/// `epochSeconds` (seconds since the epoch) as RFC 3339 in UTC with milliseconds.
package func rfc3339(epochSeconds: Double) -> String {
    let whole = Int(epochSeconds.rounded(.down))
    return rfc3339(seconds: whole, milliseconds: Int32((epochSeconds - Double(whole)) * 1000))
}

private func rfc3339(seconds: Int, milliseconds: Int32) -> String {
    var seconds = seconds
    var parts = tm()
    gmtime_r(&seconds, &parts)
    func padded(_ value: Int32, _ width: Int) -> String {
        let digits = String(value)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
    return padded(parts.tm_year + 1900, 4) + "-" + padded(parts.tm_mon + 1, 2) + "-" + padded(parts.tm_mday, 2)
        + "T" + padded(parts.tm_hour, 2) + ":" + padded(parts.tm_min, 2) + ":" + padded(parts.tm_sec, 2) + "."
        + padded(milliseconds, 3) + "Z"
}

/// Seconds since the epoch, now.
package func epochSecondsNow() -> Int {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return now.tv_sec
}

/// Seconds since the epoch of a SigV4 `X-Amz-Date` (`20150830T123600Z`), or nil when it is not one.
package func epochSeconds(amzDate: String) -> Int? {
    let characters = Array(amzDate.utf8)
    guard characters.count == 16, characters[8] == UInt8(ascii: "T"), characters[15] == UInt8(ascii: "Z") else {
        return nil
    }
    func number(_ range: Range<Int>) -> Int32? { Int32(String(decoding: characters[range], as: UTF8.self)) }
    guard let year = number(0..<4), let month = number(4..<6), let day = number(6..<8), let hour = number(9..<11),
        let minute = number(11..<13), let second = number(13..<15), (1...12).contains(month), (1...31).contains(day),
        hour < 24, minute < 60, second < 61
    else { return nil }
    var parts = tm()
    parts.tm_year = year - 1900
    parts.tm_mon = month - 1
    parts.tm_mday = day
    parts.tm_hour = hour
    parts.tm_min = minute
    parts.tm_sec = second
    return timegm(&parts)
}

/// Whether a warning last given at `last` (0: never) may be given again at `now`: once per 10 s at
/// most, so a condition that every flow or check meets says so without flooding the log. Sets `last`.
package func onceEvery10s(_ last: inout UInt64, now: UInt64) -> Bool {
    guard last == 0 || now &- last > 10_000_000_000 else { return false }
    last = now
    return true
}

/// Numbers as people read them, without Foundation's formatters.

/// `value` with exactly `decimals` digits after the point ("12.50"); "-" for NaN and infinities.
public func formatFixed(_ value: Double, decimals: Int) -> String {
    guard value.isFinite else { return "-" }
    guard abs(value) < 1e15 else { return "\(value)" }
    var scale: Int64 = 1
    for _ in 0..<decimals { scale *= 10 }
    let scaled = Int64((abs(value) * Double(scale)).rounded())
    let sign = value < 0 && scaled != 0 ? "-" : ""
    let whole = scaled / scale
    guard decimals > 0 else { return "\(sign)\(whole)" }
    var fraction = String(scaled % scale)
    while fraction.count < decimals { fraction = "0" + fraction }
    return "\(sign)\(whole).\(fraction)"
}

/// Seconds with at most three decimals and no trailing zeros: "10", "0.3", "1.25".
public func formatSeconds(_ seconds: Double) -> String {
    var text = formatFixed(seconds, decimals: 3)
    if text.contains(".") {
        while text.hasSuffix("0") { text.removeLast() }
        if text.hasSuffix(".") { text.removeLast() }
    }
    return text
}

/// A byte count in binary units: "512 B", "1.5 KiB", "3.2 MiB".
public func formatBytes(_ bytes: Double) -> String {
    guard bytes.isFinite else { return "-" }
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
    var value = bytes
    var unit = 0
    while abs(value) >= 1024, unit < units.count - 1 {
        value /= 1024
        unit += 1
    }
    return unit == 0 ? "\(formatFixed(value, decimals: 0)) B" : "\(formatFixed(value, decimals: 1)) \(units[unit])"
}

/// A rate rounded to three decimals, for JSON.
public func roundedRate(_ value: Double) -> Double {
    (value * 1000).rounded() / 1000
}

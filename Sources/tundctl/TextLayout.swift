/// Plain-text layouts for terminals: aligned tables and `key: value` blocks.

/// Rows under a header, each column as wide as its widest cell, separated by two spaces.
/// The last column is not padded, so lines carry no trailing spaces.
struct TextTable {
    let header: [String]
    var rows: [[String]] = []

    init(_ header: [String]) { self.header = header }

    mutating func add(_ row: [String]) { rows.append(row) }

    func rendered() -> String {
        let all = [header] + rows
        var widths = [Int](repeating: 0, count: header.count)
        for row in all {
            for (column, cell) in row.enumerated() where column < widths.count {
                widths[column] = max(widths[column], cell.count)
            }
        }
        return all.map { row in
            row.enumerated().map { column, cell in
                column == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[column] - cell.count)
            }.joined(separator: "  ")
        }.joined(separator: "\n") + "\n"
    }
}

/// `key: value` lines with the values aligned; a value with several lines continues under the first.
struct KeyValueBlock {
    private var entries: [(key: String, lines: [String])] = []

    mutating func add(_ key: String, _ value: String) { entries.append((key, [value])) }

    /// Several lines under one key; an empty list shows "-".
    mutating func add(_ key: String, lines: [String]) { entries.append((key, lines.isEmpty ? ["-"] : lines)) }

    func rendered() -> String {
        let width = (entries.map { $0.key.count }.max() ?? 0) + 2
        var text = ""
        for entry in entries {
            for (index, line) in entry.lines.enumerated() {
                let label = index == 0 ? entry.key + ":" : ""
                text += label + String(repeating: " ", count: width - label.count) + line + "\n"
            }
        }
        return text
    }
}

/// Everything the data module refuses. Every message names the file at fault, and for a search space's `data:`
/// section also the line and the field path, so that it can be fixed without reading code.
public enum DataError: Error, Equatable, CustomStringConvertible {
    /// A data file that cannot be used: its path and what is wrong with it.
    case file(path: String, problem: String)
    /// A problem in a search space's `data:` section: the file, the line (1-based) when known, the field path
    /// (`data.tasks[1].source.idx`) and what is wrong, with how to fix it where that is clear.
    case spec(file: String, line: Int?, field: String, problem: String)
    /// Data that fits no model (tasks with different input shapes, too few classes, ...).
    case invalid(String)

    public var description: String {
        switch self {
        case let .file(path, problem):
            return "\(path): \(problem)"
        case let .spec(file, line, field, problem):
            return "\(file):\(line.map { "\($0):" } ?? "") \(field): \(problem)"
        case let .invalid(why):
            return why
        }
    }
}

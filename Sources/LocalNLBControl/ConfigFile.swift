import Foundation
import LocalNLBDataPlane
import LocalNLBModel

extension ConfigLoader {
    /// Reads and checks the configuration file at `path` (the model itself reads no file).
    public static func load(path: String, strict: Bool = false) throws -> LoadedConfiguration {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            throw ConfigurationError(problems: ["\(path): a directory, not a file: give the configuration file in it"])
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationError(problems: ["\(path): cannot read the file (does it exist?)"])
        }
        return try load(data: data, strict: strict, name: path)
    }
}

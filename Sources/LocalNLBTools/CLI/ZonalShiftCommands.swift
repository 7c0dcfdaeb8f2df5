import Foundation
import LocalNLBControl
import LocalNLBDataPlane
import LocalNLBModel
import ProxyProtocol

/// `ctl start-zonal-shift`, `cancel-zonal-shift`, `update-zonal-shift`, `list-zonal-shifts`: the AWS
/// CLI's `arc-zonal-shift` commands, with its option names, sent as ARC's REST-JSON calls.
package enum ZonalShiftCommands {
    /// Each command's options (`*`: required) and their JSON names.
    package static let commands: [String: [String]] = [
        "start-zonal-shift": ["--resource-identifier*", "--away-from*", "--expires-in*", "--comment"],
        "cancel-zonal-shift": ["--zonal-shift-id*"],
        "update-zonal-shift": ["--zonal-shift-id*", "--expires-in", "--comment"],
        "list-zonal-shifts": ["--status", "--resource-identifier", "--max-results", "--next-token"],
    ]

    /// `--away-from` → `awayFrom`
    static func jsonName(_ option: String) -> String {
        let words = option.dropFirst(2).split(separator: "-")
        return words.enumerated().map { $0 == 0 ? String($1) : $1.prefix(1).uppercased() + $1.dropFirst() }.joined()
    }

    package static func run(
        _ command: String, _ options: [String: [String]], endpoint: IPEndpoint, credentials: ClientCredentials,
        output: CLIOutput, query: Query? = nil
    ) throws -> ControlCommand.Outcome {
        let known = commands[command]!
        let names = known.map { $0.hasSuffix("*") ? String($0.dropLast()) : $0 }
        for (option, words) in options {
            guard names.contains(option) else {
                throw ControlCommand.Failure(
                    message: "ctl \(command): unknown option \(option) (options: \(names.joined(separator: " ")))")
            }
            guard words.count == 1 else {
                throw ControlCommand.Failure(message: "ctl \(command): \(option) takes one value")
            }
        }
        for required in known where required.hasSuffix("*") && options[String(required.dropLast())] == nil {
            throw ControlCommand.Failure(message: "ctl \(command): \(required.dropLast()) is required")
        }
        let value = { (option: String) in options[option]?.first }
        let method: String
        var path = "/zonalshifts"
        var body: String?
        switch command {
        case "start-zonal-shift":
            method = "POST"
            body =
                JSONText.object(
                    ["--resource-identifier", "--away-from", "--expires-in", "--comment"].compactMap { option in
                        value(option).map { (jsonName(option), .string($0)) }
                    }
                ).rendered
        case "list-zonal-shifts":
            method = "GET"
            let query = ["--status", "--resource-identifier", "--max-results", "--next-token"].compactMap { option in
                value(option).map { "\(jsonName(option))=\(SigV4.encode($0))" }
            }
            if !query.isEmpty { path += "?" + query.joined(separator: "&") }
        default:
            method = command == "cancel-zonal-shift" ? "DELETE" : "PATCH"
            path += "/" + SigV4.encode(value("--zonal-shift-id")!)
            if command == "update-zonal-shift" {
                body =
                    JSONText.object(
                        ["--expires-in", "--comment"].compactMap { option in
                            value(option).map { (jsonName(option), .string($0)) }
                        }
                    ).rendered
            }
        }
        // Signed as the AWS CLI signs ARC's calls (or with the token).
        var signing = credentials
        signing.service = "arc-zonal-shift"
        let (status, response) = try ControlCommand.send(
            method: method, path: path, body: body, to: endpoint, credentials: signing)
        let operation = ELBv2Commands.action(command)
        guard let (parsed, _) = try? JSONParser.parse(Array(response.utf8)), case .object(let fields) = parsed else {
            throw ControlCommand.Failure(
                message: "the answer to \(operation) is not JSON: \(response.prefix(200))", exitCode: 255)
        }
        guard (200..<300).contains(status) else {
            let code =
                ["ValidationException": 400, "ResourceNotFoundException": 404, "ConflictException": 409]
                .first { $0.value == status }?.key ?? "HTTP\(status)"
            var message = ""
            if case .string(let text)? = fields["message"] { message = text }
            return ControlCommand.Outcome(
                output: "",
                error: "\nAn error occurred (\(code)) when calling the \(operation) operation: \(message)\n",
                exitCode: 254)
        }
        // In the order ARC's model lists the fields, as the AWS CLI prints them.
        let order = ["zonalShiftId", "resourceIdentifier", "awayFrom", "expiryTime", "startTime", "status", "comment"]
        func ordered(_ value: JSONValue) -> JSONText {
            guard case .object(let object) = value else { return value.text }
            return .object(
                order.compactMap { key in object[key].map { (key, $0.text) } }
                    + object.keys.filter { !order.contains($0) }.sorted().map { ($0, object[$0]!.text) })
        }
        let result: JSONText
        if case .array(let items)? = fields["items"] {
            result = .object([("items", .array(items.map(ordered)))])
        } else {
            result = ordered(parsed)
        }
        return ControlCommand.Outcome(
            output: output.render(query?.evaluate(result) ?? result, title: operation), error: "", exitCode: 0)
    }
}

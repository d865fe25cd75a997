/// The one message shape of the protocol. `cursor` is our additive field: the position
/// of an event in the replay log, which a reconnecting client hands back to resume.
public struct Envelope: Sendable, Equatable {
    public var type: String
    public var id: String
    public var timestamp: String
    public var data: JSONValue?
    public var error: String?
    public var cursor: String?

    public init(
        type: String,
        id: String,
        timestamp: String,
        data: JSONValue? = nil,
        error: String? = nil,
        cursor: String? = nil
    ) {
        self.type = type
        self.id = id
        self.timestamp = timestamp
        self.data = data
        self.error = error
        self.cursor = cursor
    }

    public init(type: MessageType, id: String, timestamp: String, data: JSONValue? = nil, error: String? = nil) {
        self.init(type: type.rawValue, id: id, timestamp: timestamp, data: data, error: error)
    }

    /// The wire form: fields in the protocol's order, absent fields left out.
    public func encoded() -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(128)
        encode(into: &bytes)
        return bytes
    }

    /// Appends the wire form to `bytes`, so a caller that frames it (the bus message) writes
    /// one buffer instead of copying a second.
    public func encode(into bytes: inout [UInt8]) {
        bytes.append(contentsOf: #"{"type":"#.utf8)
        JSONValue.writeString(type, into: &bytes)
        bytes.append(contentsOf: #","id":"#.utf8)
        JSONValue.writeString(id, into: &bytes)
        bytes.append(contentsOf: #","timestamp":"#.utf8)
        JSONValue.writeString(timestamp, into: &bytes)
        if let data {
            bytes.append(contentsOf: #","data":"#.utf8)
            data.write(into: &bytes)
        }
        if let error {
            bytes.append(contentsOf: #","error":"#.utf8)
            JSONValue.writeString(error, into: &bytes)
        }
        if let cursor {
            bytes.append(contentsOf: #","cursor":"#.utf8)
            JSONValue.writeString(cursor, into: &bytes)
        }
        bytes.append(UInt8(ascii: "}"))
    }

    /// Reads an envelope; `type`, `id` and `timestamp` must be strings.
    public init(decoding value: JSONValue) throws(EnvelopeError) {
        guard let object = value.objectValue else { throw EnvelopeError(field: nil, reason: "not a JSON object") }
        func string(_ key: String) throws(EnvelopeError) -> String {
            guard let field = object[key] else { throw EnvelopeError(field: key, reason: "is missing") }
            guard let text = field.stringValue else { throw EnvelopeError(field: key, reason: "must be a string") }
            return text
        }
        self.type = try string("type")
        self.id = try string("id")
        self.timestamp = try string("timestamp")
        self.data = object["data"]
        self.error = object["error"]?.stringValue
        self.cursor = object["cursor"]?.stringValue
    }
}

public struct EnvelopeError: Error, Sendable, Equatable {
    public let field: String?
    public let reason: String
}

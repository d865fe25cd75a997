import AiravataProtocol

/// The JSON parser every client message, producer body and bus event goes through.
///
/// Invariants: a refused document is refused at an offset inside it; an accepted one
/// respects the depth bound, writes out as JSON the parser accepts again, reads back as
/// the same value, and writing that value again gives the same bytes.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzJSONParser(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = UnsafeBufferPointer(start: data, count: size)
    let value: JSONValue
    do throws(JSONParseError) {
        value = try JSONValue(parsing: input)
    } catch {
        invariant((0...size).contains(error.offset), "error offset \(error.offset) outside a \(size)-byte input")
        return 0
    }
    invariant(depth(of: value) <= JSONValue.maximumDepth, "accepted a document deeper than the bound")

    var written: [UInt8] = []
    value.write(into: &written)
    let reread: JSONValue
    do throws(JSONParseError) {
        reread = try JSONValue(parsing: written)
    } catch {
        fatalError("the writer's output does not parse (\(error)): \(text(written)) from \(text(input))")
    }
    invariant(reread == value, "parse → write → parse changed the value: \(text(written)) from \(text(input))")
    var rewritten: [UInt8] = []
    reread.write(into: &rewritten)
    invariant(rewritten == written, "writing is not stable: \(text(written)) then \(text(rewritten))")
    return 0
}

/// Nesting depth as the parser counts it: each array or object is one level.
private func depth(of value: JSONValue) -> Int {
    switch value {
    case .array(let elements): 1 + (elements.map(depth(of:)).max() ?? 0)
    case .object(let object): 1 + (object.members.map { depth(of: $0.value) }.max() ?? 0)
    default: 0
    }
}

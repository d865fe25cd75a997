import AiravataProtocol

/// The JSON parser every client message, producer body and bus event goes through.
///
/// Invariants: a refused document is refused at an offset inside it; an accepted one
/// respects the depth bound, writes out as JSON the parser accepts again, reads back as
/// the same value, and writing that value again gives the same bytes. Read as a producer's
/// body (`parsingEvents`), it gives the same value and the same refusal, one span per event,
/// and each span holds exactly that event's `data`, compact.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzJSONParser(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = UnsafeBufferPointer(start: data, count: size)
    let value: JSONValue
    do throws(JSONParseError) {
        value = try JSONValue(parsing: input)
    } catch {
        invariant((0...size).contains(error.offset), "error offset \(error.offset) outside a \(size)-byte input")
        do throws(JSONParseError) {
            _ = try JSONValue.parsingEvents(input)
            fatalError("parsingEvents accepted what the parser refused: \(text(input))")
        } catch let other {
            invariant(other == error, "parsingEvents refused differently: \(other) against \(error)")
        }
        return 0
    }
    invariant(depth(of: value) <= JSONValue.maximumDepth, "accepted a document deeper than the bound")
    checkEventSpans(input, value)

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

/// `parsingEvents` against the tree: one span per event (the document, or each element of
/// an array), each nil or the bytes of that event's `data`, which parse alone to the same
/// value and hold no whitespace outside strings.
private func checkEventSpans(_ input: UnsafeBufferPointer<UInt8>, _ value: JSONValue) {
    let parsed: (document: JSONValue, dataSpans: [Range<Int>?])
    do throws(JSONParseError) {
        parsed = try JSONValue.parsingEvents(input)
    } catch {
        fatalError("parsingEvents refused what the parser accepted (\(error)): \(text(input))")
    }
    invariant(parsed.document == value, "parsingEvents read another value from \(text(input))")
    let events: [JSONValue]
    switch value {
    case .array(let elements): events = elements
    case .object: events = [value]
    default: events = []
    }
    invariant(parsed.dataSpans.count == events.count, "\(parsed.dataSpans.count) spans for \(events.count) events")
    for (event, span) in zip(events, parsed.dataSpans) {
        guard let span else { continue }
        invariant(span.lowerBound >= 0 && span.upperBound <= input.count, "span \(span) outside the input")
        guard let data = event["data"] else { fatalError("a span for an event without data: \(text(input))") }
        let bytes = Array(input[span])
        invariant((try? JSONValue(parsing: bytes)) == data, "the span is not the event's data: \(text(bytes))")
        invariant(whitespaceOutsideStrings(bytes) == 0, "a span with whitespace: \(text(bytes))")
    }
}

private func whitespaceOutsideStrings(_ bytes: [UInt8]) -> Int {
    var count = 0
    var inString = false
    var escaped = false
    for byte in bytes {
        if inString {
            if escaped {
                escaped = false
            } else if byte == UInt8(ascii: "\\") {
                escaped = true
            } else if byte == UInt8(ascii: "\"") {
                inString = false
            }
        } else if byte == UInt8(ascii: "\"") {
            inString = true
        } else if [0x20, 0x09, 0x0A, 0x0D].contains(byte) {
            count += 1
        }
    }
    return count
}

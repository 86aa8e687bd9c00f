/// The tokens of the message just read, as the client wrote them (whitespace dropped):
/// valid only inside the `feed` callback that hands it over. Forwarding uses it to put
/// the broker's id into the client's own bytes instead of serialising the parsed value
/// again.
package struct QMPMessageTokens {
    let tokens: UnsafeBufferPointer<QMPToken>
    let text: UnsafeBufferPointer<UInt8>

    /// The object's members after its `{`, up to and including its `}`, without the
    /// top-level `id` member: `{"id": N, ` in front makes the message with the broker's id.
    /// nil when the message is not an object, has no other member, or spells `id` with
    /// escapes (then the caller serialises the parsed value).
    package func membersWithoutID() -> [UInt8]? {
        guard tokens.count >= 3, tokens[0].kind == .leftBrace else { return nil }
        var depth = 0
        var idMember: Range<Int>?
        var index = 0
        while index < tokens.count {
            let token = tokens[index]
            switch token.kind {
            case .leftBrace, .leftBracket: depth += 1
            case .rightBrace, .rightBracket: depth -= 1
            case .string where depth == 1 && index + 1 < tokens.count && tokens[index + 1].kind == .colon:
                let key = UnsafeBufferPointer(rebasing: text[token.start..<token.start + token.count])
                guard isID(key) else {
                    if key.contains(UInt8(ascii: "\\")) { return nil }  // could be `"\u0069d"`
                    break
                }
                // The member runs to the next comma or closing brace at depth 1.
                var end = index + 2
                var inner = 0
                while end < tokens.count {
                    let kind = tokens[end].kind
                    if inner == 0 && (kind == .comma || kind == .rightBrace) { break }
                    if kind == .leftBrace || kind == .leftBracket { inner += 1 }
                    if kind == .rightBrace || kind == .rightBracket { inner -= 1 }
                    end += 1
                }
                idMember = index..<end
                index = end
                continue
            default:
                break
            }
            index += 1
        }
        var skipped = idMember ?? 0..<0
        if let member = idMember {
            if tokens[member.upperBound].kind == .comma {
                skipped = member.lowerBound..<member.upperBound + 1  // `"id": x,`
            } else if member.lowerBound > 1 {
                skipped = member.lowerBound - 1..<member.upperBound  // `, "id": x` before the `}`
            } else {
                return nil  // `{"id": x}`: nothing else to send
            }
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.count + 2)
        for position in 1..<tokens.count where !skipped.contains(position) {
            let token = tokens[position]
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: text[token.start..<token.start + token.count]))
        }
        return bytes
    }

    private func isID(_ key: UnsafeBufferPointer<UInt8>) -> Bool {
        key.count == 4 && (key[0] == UInt8(ascii: "\"") || key[0] == UInt8(ascii: "'"))
            && key[1] == UInt8(ascii: "i") && key[2] == UInt8(ascii: "d") && key[3] == key[0]
    }
}

/// The actions for one input, in the order to run them: `stopVM`, `persist`, the event
/// (or `forwardToGuest` with the event it announces afterwards), `contVM`.
///
/// A fixed inline list rather than an `Array`: the stop after a guest link reset must go out
/// well under a millisecond after the trace line, so a transition allocates nothing.
/// No input yields more than three actions.
package struct DeviceActions: RandomAccessCollection, Hashable, Sendable, ExpressibleByArrayLiteral,
    CustomStringConvertible
{
    package static let capacity = 4

    private var slot0: DeviceAction?
    private var slot1: DeviceAction?
    private var slot2: DeviceAction?
    private var slot3: DeviceAction?
    package private(set) var count = 0

    package init() {}

    package init(arrayLiteral elements: DeviceAction...) {
        for element in elements { append(element) }
    }

    package static let none = DeviceActions()

    package var startIndex: Int { 0 }
    package var endIndex: Int { count }

    package subscript(position: Int) -> DeviceAction {
        precondition(position >= 0 && position < count, "DeviceActions index out of range")
        // Non-nil below `count` by construction of `append`.
        if position == 0 { return slot0! }
        if position == 1 { return slot1! }
        if position == 2 { return slot2! }
        return slot3!
    }

    mutating func append(_ action: DeviceAction) {
        precondition(count < Self.capacity, "a transition produced more than \(Self.capacity) actions")
        if count == 0 {
            slot0 = action
        } else if count == 1 {
            slot1 = action
        } else if count == 2 {
            slot2 = action
        } else {
            slot3 = action
        }
        count += 1
    }

    package var description: String { Array(self).description }
}

/// Groups the guest-reset suites so `swift test --filter GuestReset` selects exactly them.
enum GuestReset {}

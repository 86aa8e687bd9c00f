import Testing
@Test func ErrorEventsTestsBuilds() {}

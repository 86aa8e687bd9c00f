import Testing
@Test func VFIOWatchTestsBuilds() {}

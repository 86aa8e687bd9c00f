import Testing
@Test func QMPBrokerTestsBuilds() {}

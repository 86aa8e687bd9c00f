import QMPBroker
print("qmp-broker")

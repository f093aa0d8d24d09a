// The lab's building blocks (namespaces, processes, QEMU, ipmi_sim, the rack around `anvil serve`)
// live in the Lab library so `anvil lab` runs the same code; tests keep importing ApplianceTesting.
@_exported import Lab

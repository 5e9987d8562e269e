import MeshNode
print("meshnode \(MeshNodeVersion.string)")

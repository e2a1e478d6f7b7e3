"""The benchmark catalog: manifests read from disk, validated, recorded by version."""

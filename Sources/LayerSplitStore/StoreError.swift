/// Placeholder so the module builds; the store issue replaces this file.
public enum StoreError: Error {}

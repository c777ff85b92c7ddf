// The library API of `weights`: one import gives the readers, mapping tables, models and verification.
@_exported import Checkpoints
@_exported import Models
@_exported import TensorCore
@_exported import Verification
@_exported import WeightMapping

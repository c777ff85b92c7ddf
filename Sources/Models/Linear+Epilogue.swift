import TensorCore

extension Linear {
    /// activation(x · Wᵀ + b), the activation applied by the GEMM's workers while each output block is in cache.
    package func callAsFunction(_ x: FloatTensor, activation: Kernels.VectorFunction) -> FloatTensor {
        Kernels.linear(x, weight: weight, bias: bias, activation: activation, packed: packedWeight)
    }

    /// residual + (x · Wᵀ + b): a skip connection accumulated by the GEMM itself.
    package func callAsFunction(_ x: FloatTensor, residual: FloatTensor) -> FloatTensor {
        Kernels.linear(x, weight: weight, bias: bias, residual: residual, packed: packedWeight)
    }
}

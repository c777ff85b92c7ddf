/// Keras weight-file layouts in HDF5, recognised after the generic walk and renamed to sensible dotted names.
///
/// - Legacy `.h5` (`model.save_weights(...h5)` / `model.save(...h5)` in Keras 1–2 and tf.keras): the root, or
///   the `model_weights` group, has the attribute `layer_names`; each layer group has `weight_names` such as
///   `dense/kernel:0`, and the dataset lives at `<layer>/<weight name>`. Tensors are named
///   `<layer>.<weight name without :N>` with `/` → `.`, without repeating the layer name when the weight name
///   already starts with it (`dense/kernel:0` in layer `dense` → `dense.kernel`), and ordered as `layer_names`
///   lists them. Attributes too large for one HDF5 object header are split by Keras into `layer_names0`,
///   `layer_names1`, …; those are joined.
/// - Keras 3 `.weights.h5`: `layers/<name>/vars/<i>`, nested `layers/<a>/layers/<b>/vars/<i>` → `<name>.<i>`,
///   `a.b.<i>` (the structural `layers` and `vars` components are dropped).
///
/// Datasets outside these patterns (optimizer state, …) keep their path names.
enum HDF5Keras {
    /// Renames `datasets` in place and returns the layout recognised, if any.
    static func rename(_ datasets: inout [H5Dataset], stringAttributes: [String: [String: [String]]]) -> String? {
        if legacy(&datasets, stringAttributes) { return "legacy-h5" }
        if keras3(&datasets) { return "keras3-weights-h5" }
        return nil
    }

    /// A string-list attribute, joining Keras's chunked form (`name0`, `name1`, …) when the whole one is absent.
    static func stringList(_ attrs: [String: [String]]?, _ name: String) -> [String]? {
        guard let attrs else { return nil }
        if let whole = attrs[name] { return whole }
        var out: [String] = []
        var chunk = 0
        while let part = attrs["\(name)\(chunk)"] { out += part; chunk += 1 }
        return chunk > 0 ? out : nil
    }

    /// `dense/kernel:0` → `dense/kernel`.
    static func stripOutputIndex(_ weightName: String) -> String {
        guard let colon = weightName.lastIndex(of: ":") else { return weightName }
        let suffix = weightName[weightName.index(after: colon)...]
        guard !suffix.isEmpty, suffix.allSatisfy(\.isASCII), suffix.allSatisfy(\.isNumber) else { return weightName }
        return String(weightName[..<colon])
    }

    private static func legacy(_ datasets: inout [H5Dataset], _ attrs: [String: [String: [String]]]) -> Bool {
        guard let base = ["/", "/model_weights"].first(where: { stringList(attrs[$0], "layer_names") != nil }),
              let layers = stringList(attrs[base], "layer_names") else { return false }
        var index: [String: Int] = [:]
        for (i, d) in datasets.enumerated() { index[d.hdfPath] = i }
        var order: [Int] = []
        var newNames: [Int: String] = [:]
        for layer in layers {
            let groupPath = H5Walker.join(base, layer)
            guard let weights = stringList(attrs[groupPath], "weight_names") else { continue }
            for w in weights {
                guard let i = index[H5Walker.join(groupPath, w)], newNames[i] == nil else { continue }
                let stem = stripOutputIndex(w)
                let full = stem == layer || stem.hasPrefix(layer + "/") ? stem : layer + "/" + stem
                newNames[i] = full.replacingSlashes()
                order.append(i)
            }
        }
        guard !order.isEmpty else { return false }
        // Keras-named tensors first, in layer order; then everything else in walk order.
        let inOrder = Set(order)
        let rest = datasets.indices.filter { !inOrder.contains($0) }
        var taken = Set(rest.map { datasets[$0].name })
        var out: [H5Dataset] = []
        out.reserveCapacity(datasets.count)
        for i in order {
            var d = datasets[i]
            if let n = newNames[i], !taken.contains(n) { d.name = n }
            taken.insert(d.name)
            out.append(d)
        }
        out += rest.map { datasets[$0] }
        datasets = out
        return true
    }

    private static func keras3(_ datasets: inout [H5Dataset]) -> Bool {
        func isVarPath(_ comps: [Substring]) -> Bool {
            comps.count >= 4 && comps[0] == "layers" && comps[comps.count - 2] == "vars"
                && comps[comps.count - 1].allSatisfy(\.isNumber)
        }
        let split = datasets.map { $0.hdfPath.split(separator: "/", omittingEmptySubsequences: true) }
        guard split.contains(where: isVarPath) else { return false }
        var taken = Set<String>()
        var renamed = datasets
        for (i, comps) in split.enumerated() where comps.first == "layers" {
            var parts: [Substring] = []
            var k = 0
            while k < comps.count {
                if comps[k] == "layers" && k + 1 < comps.count { parts.append(comps[k + 1]); k += 2; continue }
                if comps[k] == "vars" && k + 2 == comps.count { parts.append(comps[k + 1]); k += 2; continue }
                parts.append(comps[k]); k += 1
            }
            renamed[i].name = parts.joined(separator: ".")
        }
        // Fall back to path names if the short names collide with anything.
        for (i, d) in renamed.enumerated() {
            if !taken.insert(d.name).inserted { renamed[i].name = datasets[i].name }
        }
        if Set(renamed.map(\.name)).count != renamed.count { return false }
        datasets = renamed
        return true
    }
}

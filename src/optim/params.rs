//! The parameters of a Burn module by dotted path (`features.3.weight`, `classifier.weight`), the
//! globs that select them, and the one rule that tells weights from biases.

use crate::device_read::read_f64;
use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::tensor::Tensor;

/// Whether a parameter of this rank is a weight (rank >= 2). Vectors and scalars count as biases
/// everywhere: in the optimizer's default potential, in the diagnostics, and in pruning.
pub fn is_weight(rank: usize) -> bool {
    rank >= 2
}

/// One float parameter of a module.
#[derive(Clone, Debug, PartialEq)]
pub struct NamedParam {
    /// Dotted path, e.g. `features.0.weight`.
    pub path: String,
    /// Shape.
    pub dims: Vec<usize>,
    /// Burn's parameter id (keys of `GradientsParams`).
    pub id: ParamId,
    /// Values, row-major, as f64 (empty unless requested).
    pub values: Vec<f64>,
}

/// Every float parameter of `module` in visiting order; with `with_values`, each is copied to the
/// host once.
pub fn named_params<M: Module>(module: &M, with_values: bool) -> Vec<NamedParam> {
    param_tensors(module)
        .into_iter()
        .map(|(mut param, tensor)| {
            if with_values {
                param.values = read_f64(tensor);
            }
            param
        })
        .collect()
}

/// Every float parameter of `module` in visiting order (its `values` empty) with its current value
/// as a flat tensor on its device: a reference, not a copy.
pub fn param_tensors<M: Module>(module: &M) -> Vec<(NamedParam, Tensor<1>)> {
    let mut collector = ParamCollector {
        stack: Vec::new(),
        params: Vec::new(),
    };
    module.visit(&mut collector);
    collector.params
}

/// The dotted paths of every float parameter of `module`, in visiting order.
pub fn param_paths<M: Module>(module: &M) -> Vec<String> {
    named_params(module, false)
        .into_iter()
        .map(|p| p.path)
        .collect()
}

/// Translates a glob (`*` matches any run of characters, everything else literally) into an
/// anchored regular expression.
pub fn glob_to_regex(glob: &str) -> String {
    let body: Vec<String> = glob.split('*').map(regex::escape).collect();
    format!("^{}$", body.join(".*"))
}

struct ParamCollector {
    stack: Vec<String>,
    params: Vec<(NamedParam, Tensor<1>)>,
}

impl ModuleVisitor for ParamCollector {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.stack.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.stack.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let tensor = param.val();
        let dims = tensor.dims().to_vec();
        let flat = tensor.reshape([dims.iter().product::<usize>()]);
        let named = NamedParam {
            path: self.stack.join("."),
            dims,
            id: param.id,
            values: Vec::new(),
        };
        self.params.push((named, flat));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_whole_paths_only() {
        let regex = regex::Regex::new(&glob_to_regex("features.1*")).unwrap();
        assert!(regex.is_match("features.1.weight"));
        assert!(regex.is_match("features.12.weight"));
        assert!(!regex.is_match("xfeatures.1.weight"));
        let exact = regex::Regex::new(&glob_to_regex("classifier.weight")).unwrap();
        assert!(exact.is_match("classifier.weight"));
        assert!(!exact.is_match("classifierXweight"), "dots are literal");
    }

    #[test]
    fn vgg_paths_and_shapes_in_visiting_order() {
        let model = crate::model::Vgg::new(16, 0, &burn::tensor::Device::flex());
        let params = named_params(&model, true);
        assert_eq!(params[0].path, "features.0.weight");
        assert_eq!(params[0].dims, vec![4, 3, 3, 3]);
        assert_eq!(params[0].values.len(), 108);
        assert_eq!(params[1].path, "features.0.bias");
        assert_eq!(params.last().unwrap().path, "classifier.weight");
        assert_eq!(
            params.iter().filter(|p| is_weight(p.dims.len())).count(),
            14
        );
    }
}

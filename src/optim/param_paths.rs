//! Parameter paths of a Burn module (`features.3.weight`, `classifier.weight`) and the globs that
//! select them.

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;

/// The dotted paths of every float parameter of `module`, in visiting order.
pub fn param_paths<M: Module>(module: &M) -> Vec<String> {
    let mut collector = PathCollector::default();
    module.visit(&mut collector);
    collector.paths
}

/// Translates a glob (`*` matches any run of characters, everything else literally) into an
/// anchored regular expression.
pub fn glob_to_regex(glob: &str) -> String {
    let body: Vec<String> = glob.split('*').map(regex::escape).collect();
    format!("^{}$", body.join(".*"))
}

#[derive(Default)]
struct PathCollector {
    stack: Vec<String>,
    paths: Vec<String>,
}

impl ModuleVisitor for PathCollector {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.stack.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.stack.pop();
    }

    fn visit_float<const D: usize>(&mut self, _param: &Param<Tensor<D>>) {
        self.paths.push(self.stack.join("."));
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
}

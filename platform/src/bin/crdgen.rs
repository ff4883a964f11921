//! Prints the RayClusterTemplate CRD; deploy/crds/raydar.dev_rayclustertemplates.yaml is its output:
//! `cargo run -p raydar-platform --bin crdgen > deploy/crds/raydar.dev_rayclustertemplates.yaml`.

fn main() {
    print!("{}", raydar_platform::template::crd_yaml());
}

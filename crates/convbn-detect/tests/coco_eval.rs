//! The evaluator against pycocotools on the reference problem
//! (`tests/fixtures/coco_eval_reference.json`: ground truth with crowd boxes and all three
//! size ranges, detections, and pycocotools' 12 summary numbers).

use convbn_detect::coco::{CocoDataset, Detection, STAT_NAMES, evaluate};

#[derive(serde::Deserialize)]
struct Reference {
    #[serde(flatten)]
    gt: CocoDataset,
    detections: Vec<Detection>,
    stats: Vec<f64>,
    stats_names: Vec<String>,
}

fn reference() -> Reference {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/coco_eval_reference.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn reproduces_pycocotools_twelve_numbers() {
    let r = reference();
    assert_eq!(r.stats_names, STAT_NAMES);
    let ours = evaluate(&r.gt, &r.detections).unwrap();
    print!("{}", ours.table());
    for ((name, want), got) in STAT_NAMES.iter().zip(&r.stats).zip(ours.stats) {
        assert!(
            (want - got).abs() <= 1e-4,
            "{name}: pycocotools {want}, ours {got}"
        );
    }
}

#[test]
fn perfect_detections_score_one_and_none_score_zero() {
    let r = reference();
    let perfect: Vec<Detection> =
        r.gt.annotations
            .iter()
            .filter(|a| a.iscrowd == 0)
            .map(|a| Detection {
                image_id: a.image_id,
                category_id: a.category_id,
                bbox: a.bbox,
                score: 1.0,
            })
            .collect();
    let stats = evaluate(&r.gt, &perfect).unwrap().stats;
    assert!((stats[0] - 1.0).abs() < 1e-12, "AP {}", stats[0]);
    assert!((stats[8] - 1.0).abs() < 1e-12, "AR100 {}", stats[8]);
    let empty = evaluate(&r.gt, &[]).unwrap().stats;
    assert_eq!(empty[0], 0.0);
    assert_eq!(empty[8], 0.0);
}

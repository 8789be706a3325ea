//! The trivial baseline a detector must beat: no look at the pixels, only the training set's
//! statistics. Every test image gets boxes of the training set's median width and height on a
//! regular grid that tiles the image (spacing: the median size), all of the most frequent
//! class and all scored alike. Its AP says how much of a score comes from dense, typical-size
//! guessing (considerable for crowded, uniform objects such as tree crowns).

use crate::boxes::Bbox;
use crate::decode::Prediction;
use crate::train::data::DetectionSet;

/// Most boxes per image (COCO scores at most 100 per image).
const MAX_BOXES: usize = 100;

/// The baseline's predictions for every image of `test`, from the statistics of `train`.
pub fn grid_baseline(train: &DetectionSet, test: &DetectionSet) -> Vec<Vec<Prediction>> {
    let median = |mut v: Vec<f64>| -> f64 {
        if v.is_empty() {
            return 1.0;
        }
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let all: Vec<Bbox> = train.boxes.iter().flatten().copied().collect();
    let (w, h) = (
        median(all.iter().map(|b| b.width()).collect()).max(1.0),
        median(all.iter().map(|b| b.height()).collect()).max(1.0),
    );
    let mut counts = vec![0usize; train.classes.len().max(1)];
    for &l in train.labels.iter().flatten() {
        counts[l] += 1;
    }
    let label = (0..counts.len()).max_by_key(|&c| counts[c]).unwrap_or(0);
    test.sizes
        .iter()
        .map(|&(iw, ih)| {
            let (iw, ih) = (f64::from(iw), f64::from(ih));
            let (nx, ny) = ((iw / w).ceil() as usize, (ih / h).ceil() as usize);
            let mut out = Vec::new();
            'grid: for j in 0..ny.max(1) {
                for i in 0..nx.max(1) {
                    if out.len() == MAX_BOXES {
                        break 'grid;
                    }
                    let (x, y) = (i as f64 * w, j as f64 * h);
                    out.push(Prediction {
                        bbox: Bbox::new(x, y, x + w, y + h).clip(iw, ih),
                        score: 1.0,
                        label,
                    });
                }
            }
            out
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::RgbImage;

    #[test]
    fn median_boxes_tile_each_test_image_with_the_commonest_class() {
        let image = |w, h| ("x".to_string(), RgbImage::new(w, h));
        let classes = vec!["a".to_string(), "b".to_string()];
        let mut train = DetectionSet::from_images(classes.clone(), &[image(50, 50)], 32);
        train.boxes[0] = vec![
            Bbox::new(0.0, 0.0, 10.0, 20.0),
            Bbox::new(5.0, 5.0, 15.0, 25.0),
            Bbox::new(0.0, 0.0, 40.0, 40.0),
        ];
        train.labels[0] = vec![1, 1, 0];
        let test = DetectionSet::from_images(classes, &[image(30, 50)], 32);
        let p = &grid_baseline(&train, &test)[0];
        // Median 10 x 20: 3 columns, 3 rows (the last clipped to 10 px).
        assert_eq!(p.len(), 9);
        assert!(p.iter().all(|q| q.label == 1 && q.score == 1.0));
        assert_eq!(p[0].bbox, Bbox::new(0.0, 0.0, 10.0, 20.0));
        assert_eq!(p[8].bbox, Bbox::new(20.0, 40.0, 30.0, 50.0));
    }
}

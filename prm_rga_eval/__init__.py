"""The evaluation arithmetic, in numpy and pycocotools only: COCO AP per GT-count subset,
CrowdHuman's mMR / AP50, the paired bootstrap of both, and the per-image records they are
recomputed from. Apart from ``prm_rga`` so that the report and its intervals load without
torch or mmdet; ``prm_rga.metrics`` wraps them as mmdet metrics and re-exports the public
functions under the names of DESIGN.md."""

"""The face path: frame sources, face detection + the shared crop preprocessing, and the
expression recogniser (int8 TFLite).  Needs OpenCV (``opencv-python-headless<5``)."""

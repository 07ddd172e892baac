"""The attributes the archive index keeps, per query/retrieve level (PS3.4 §C.6.1.1,
§C.6.2.1: the unique and required keys and the common optional ones), and the
computed ones it answers from the index (PS3.4 §C.3.4, Table C.3-6 to C.3-8)."""

from __future__ import annotations

LEVELS = ("PATIENT", "STUDY", "SERIES", "IMAGE")

#: Stored keys per level; the first is the level's unique key.
PATIENT_KEYS = ("PatientID", "PatientName", "IssuerOfPatientID", "PatientBirthDate",
                "PatientBirthTime", "PatientSex", "OtherPatientIDs", "OtherPatientNames",
                "EthnicGroup", "PatientComments")
STUDY_KEYS = ("StudyInstanceUID", "StudyDate", "StudyTime", "AccessionNumber", "StudyID",
              "ReferringPhysicianName", "StudyDescription", "PatientAge", "PatientSize",
              "PatientWeight", "NameOfPhysiciansReadingStudy", "AdmittingDiagnosesDescription",
              "AdditionalPatientHistory", "Occupation", "IssuerOfAccessionNumberSequence",
              "ProcedureCodeSequence")
SERIES_KEYS = ("SeriesInstanceUID", "Modality", "SeriesNumber", "SeriesDescription",
               "SeriesDate", "SeriesTime", "BodyPartExamined", "ProtocolName", "Laterality",
               "InstitutionName", "StationName", "Manufacturer", "OperatorsName",
               "PerformingPhysicianName", "PerformedProcedureStepStartDate",
               "PerformedProcedureStepStartTime", "RequestAttributesSequence")
IMAGE_KEYS = ("SOPInstanceUID", "SOPClassUID", "InstanceNumber", "ContentDate", "ContentTime",
              "AcquisitionDate", "AcquisitionTime", "ImageType", "NumberOfFrames", "Rows",
              "Columns", "BitsAllocated", "ImageComments")

LEVEL_KEYS = {"PATIENT": PATIENT_KEYS, "STUDY": STUDY_KEYS, "SERIES": SERIES_KEYS,
              "IMAGE": IMAGE_KEYS}
TABLES = {"PATIENT": "patients", "STUDY": "studies", "SERIES": "series", "IMAGE": "instances"}
ALIASES = {"PATIENT": "p", "STUDY": "st", "SERIES": "se", "IMAGE": "i"}

#: Keys computed from the index, by the level they describe.
COMPUTED = {
    "NumberOfPatientRelatedStudies": "PATIENT",
    "NumberOfPatientRelatedSeries": "PATIENT",
    "NumberOfPatientRelatedInstances": "PATIENT",
    "ModalitiesInStudy": "STUDY",
    "SOPClassesInStudy": "STUDY",
    "NumberOfStudyRelatedSeries": "STUDY",
    "NumberOfStudyRelatedInstances": "STUDY",
    "NumberOfSeriesRelatedInstances": "SERIES",
}

KEY_LEVEL = {kw: level for level, kws in LEVEL_KEYS.items() for kw in kws}
SEQUENCE_KEYS = frozenset(["ProcedureCodeSequence", "RequestAttributesSequence",
                           "IssuerOfAccessionNumberSequence"])
ALL_KEYS = tuple(kw for level in LEVELS for kw in LEVEL_KEYS[level])
SCALAR_KEYS = tuple(kw for kw in ALL_KEYS if kw not in SEQUENCE_KEYS)
